"""Dataset operations behind `sarbench datasets ...`: prepare, import, verify, show, open."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.datasets.layout import LOCAL_COPY, check_dataset_name
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.registry import (
    GENERATORS,
    check_known,
    generator,
    importer,
)
from harness.datasets.source import DatasetSource
from harness.datasets.store import replace_dir, verify_files, write_source
from harness.errors import (
    DatasetNotPreparedError,
    ManifestError,
    SarbenchError,
    UnknownNameError,
    VerificationError,
)
from harness.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """What prepare or import did: ``frozen`` (first manifest written), ``prepared``
    (reproduced the committed manifest) or ``skipped`` (already there and verified)."""

    name: str
    status: Literal["frozen", "prepared", "skipped"]
    digest: str
    path: Path
    counts: dict[str, int]


def committed_manifest(settings: Settings, name: str) -> Manifest | None:
    path = settings.manifest_path(name)
    return Manifest.load(path) if path.is_file() else None


def require_manifest(settings: Settings, name: str) -> Manifest:
    check_known(settings, name)
    m = committed_manifest(settings, name)
    if m is None:
        raise ManifestError(
            f"dataset {name!r} has no manifest at {settings.manifest_path(name)}; "
            f"run `sarbench datasets prepare {name}` to freeze it"
        )
    return m


def prepare(
    settings: Settings, name: str, *, force: bool = False, progress: bool = True
) -> Outcome:
    """Generate an embedded dataset under the data root and check it against its manifest.

    With a committed manifest the result must reproduce its digest exactly, else nothing is
    replaced and the error lists the files that differ. Without one, the dataset is frozen:
    its manifest and dataset card are written to the manifests folder.
    """
    source = generator(name).build()
    return materialise(settings, source, skip_if_verified=not force, progress=progress)


def import_dataset(
    settings: Settings,
    kind: str,
    source_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    task: str | None = None,
    progress: bool = True,
) -> Outcome:
    """Import real data with an importer; freezing works exactly as for :func:`prepare`.

    The source is always read again (never skipped), so importing another folder under a
    frozen name fails with the differences instead of passing silently.
    """
    src = Path(source_dir)
    if not src.is_dir():
        raise SarbenchError(f"{src}: source folder not found")
    source = importer(kind).build(source_dir=src, name=name, task=task)
    if source.name in GENERATORS:
        raise SarbenchError(f"{source.name!r} is an embedded dataset; import under another --name")
    return materialise(settings, source, skip_if_verified=False, progress=progress)


def materialise(
    settings: Settings,
    source: DatasetSource,
    *,
    skip_if_verified: bool = True,
    progress: bool = True,
) -> Outcome:
    """Write ``source`` under the data root, then reproduce or freeze its manifest.

    Nothing under the data root or the manifests folder changes unless the whole dataset
    was written and agrees with the committed manifest (or is being frozen).
    """
    check_dataset_name(source.name)
    final = settings.dataset_dir(source.name)
    committed = committed_manifest(settings, source.name)
    if (
        skip_if_verified
        and committed is not None
        and final.is_dir()
        and not verify_files(committed, final, progress=False)
    ):
        return Outcome(source.name, "skipped", committed.digest, final, committed.count())
    settings.data_root.mkdir(parents=True, exist_ok=True)
    staging = settings.data_root / f".{source.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = write_source(source, staging, progress=progress)
        if committed is not None:
            if manifest.digest != committed.digest:
                diffs = diff_manifests(committed, manifest)
                shown = "\n".join(f"  - {d}" for d in diffs[:50])
                more = f"\n  ... and {len(diffs) - 50} more" if len(diffs) > 50 else ""
                raise ManifestError(
                    f"{source.name}: the data made now has digest {manifest.digest}, but the "
                    f"committed manifest {settings.manifest_path(source.name)} has "
                    f"{committed.digest}; nothing was replaced. Differences:\n{shown}{more}"
                )
            status: Literal["frozen", "prepared"] = "prepared"
        else:
            from harness.datasets.card import write_card  # Pillow work, only when freezing

            write_card(settings, manifest, data_dir=staging)
            manifest.save(settings.manifest_path(source.name))
            status = "frozen"
        manifest.save(staging / LOCAL_COPY)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(source.name, status, manifest.digest, final, manifest.count())


def diff_manifests(want: Manifest, got: Manifest) -> list[str]:
    """Readable differences between a committed manifest and a freshly made one."""
    out: list[str] = []
    for key in ("task", "bands"):
        if getattr(want, key) != getattr(got, key):
            out.append(f"{key}: committed {getattr(want, key)!r}, made {getattr(got, key)!r}")
    for split in sorted(set(want.splits) | set(got.splits)):
        a, b = set(want.splits.get(split, [])), set(got.splits.get(split, []))
        if a != b:
            out.append(f"split {split!r}: {len(a - b)} sample(s) missing, {len(b - a)} new")
    for rel in sorted(set(want.files) | set(got.files)):
        if rel not in got.files:
            out.append(f"{rel}: not produced")
        elif rel not in want.files:
            out.append(f"{rel}: produced but not in the manifest")
        elif want.files[rel] != got.files[rel]:
            out.append(f"{rel}: content differs")
    return out


def verify(settings: Settings, name: str, *, progress: bool = True) -> Manifest:
    """Check the data files of ``name`` against its committed manifest.

    Raises :class:`VerificationError` listing every changed, missing or extra file.
    """
    manifest = require_manifest(settings, name)
    problems = verify_files(manifest, settings.dataset_dir(name), progress=progress)
    if problems:
        raise VerificationError(name, problems)
    return manifest


def is_prepared(settings: Settings, name: str) -> bool:
    """Cheap check: the data folder exists and its manifest copy matches the committed one."""
    local = settings.dataset_dir(name) / LOCAL_COPY
    committed = committed_manifest(settings, name)
    if committed is None or not local.is_file():
        return False
    try:
        return Manifest.load(local).digest == committed.digest
    except ManifestError:
        return False


def open_split(settings: Settings, name: str, split: str) -> SplitDir:
    """A split of a prepared dataset, with errors that say how to fix what is missing."""
    manifest = require_manifest(settings, name)
    if split not in manifest.splits:
        raise UnknownNameError(f"split of {name}", split, manifest.splits)
    if not is_prepared(settings, name):
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared under {settings.data_root}; run "
            f"`sarbench datasets prepare {name}` (or `import` for real data)"
        )
    return SplitDir(settings.dataset_dir(name) / split)


def describe(settings: Settings, name: str) -> dict[str, Any]:
    """Facts about a dataset for `sarbench datasets show` and `list`."""
    check_known(settings, name)
    m = committed_manifest(settings, name)
    kind = "synthetic" if name in GENERATORS else "imported"
    info: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "task": m.task if m else GENERATORS[name].task,
        "manifest": str(settings.manifest_path(name)) if m else None,
        "data_dir": str(settings.dataset_dir(name)),
        "prepared": is_prepared(settings, name),
    }
    if m is not None:
        info.update(
            digest=m.digest,
            bands=list(m.bands),
            splits=m.count(),
            files=len(m.files),
            source=m.source,
        )
    return info
