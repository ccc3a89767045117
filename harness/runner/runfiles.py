"""The files of a run folder that the runner copies or lists: what a container left in
``/model/artifacts`` (bounded), the validated predictions, the listing of a run folder, and
the mounted weights with their digests. Nothing here trusts a container's tree: walks are
iterative and bounded, links are never followed."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

ARTIFACT_CAP_BYTES = 64 * 1024 * 1024
ARTIFACT_MAX_FILES = 1000
ARTIFACT_MAX_DEPTH = 8


def keep_predictions(output: Path, dest: Path, ids: list[str]) -> None:
    """Copy the validated predictions (one ``<id>.tif`` each, nothing else) out of the
    container's writable space."""
    from harness.datasets.layout import SUFFIX

    dest.mkdir()
    for chip in ids:
        name = f"{chip}{SUFFIX}"
        with open(output / name, "rb", opener=no_follow) as fsrc, open(dest / name, "wb") as f:
            shutil.copyfileobj(fsrc, f)


def weights_listing(folder: Path) -> dict[str, Any]:
    """Each file under ``folder`` with its size and SHA-256, and ``digest``: the SHA-256 of
    the sorted (name, file digest) pairs, the checkpoint's identity in the run key and the
    comparability key."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listed = []
    for p in files:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        listed.append(
            {
                "name": str(p.relative_to(folder)),
                "bytes": p.stat().st_size,
                "sha256": h.hexdigest(),
            }
        )
    pairs = "\n".join(f"{f['name']}\t{f['sha256']}" for f in listed)
    return {
        "path": str(folder),
        "files": listed,
        "digest": "sha256:" + hashlib.sha256(pairs.encode()).hexdigest(),
    }


def keep_artifacts(src: Path, dest: Path) -> None:
    """Copy the regular files the entry left in ``/model/artifacts``: no links, at most
    :data:`ARTIFACT_MAX_FILES` files, :data:`ARTIFACT_MAX_DEPTH` folders deep and
    :data:`ARTIFACT_CAP_BYTES` in all; the walk is iterative and bounded, so no tree the
    container makes (deep, wide, long names) can break it."""
    if not src.is_dir() or src.is_symlink():
        return
    total = files = 0
    stack: list[tuple[Path, int]] = [(src, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for item in entries:
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 < ARTIFACT_MAX_DEPTH:
                    stack.append((Path(item.path), depth + 1))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            total += st.st_size
            files += 1
            if total > ARTIFACT_CAP_BYTES or files > ARTIFACT_MAX_FILES:
                return
            target = dest / Path(item.path).relative_to(src)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(item.path, "rb", opener=no_follow) as fsrc, open(target, "wb") as f:
                    shutil.copyfileobj(fsrc, f)
            except OSError:
                continue


def no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)
