"""A run folder as bytes and back: how a node sends a run home, and how the driver
installs it.

A cluster may share no filesystem, so a node runs in a scratch folder of its own and sends
the record (as JSON) and every other file of the run folder (as an uncompressed tar, in
memory) back to the driver. Only the driver writes the home: :func:`install` unpacks the
files into ``<runs>/.incoming/`` (the same filesystem), writes the record there with the
one writer (:meth:`harness.record.RunFolder.save`) and renames the folder into place under
the run's lock. A run folder appears whole or not at all, and an existing record is never
overwritten: a run recorded meanwhile (another driver) keeps its record, and the node's
copy is dropped.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path
from typing import Literal

from harness.errors import SarbenchError
from harness.record import RECORD_FILE, RunFolder, RunRecord
from harness.runner.records import run_lock
from harness.runtime.scratch import remove_tree

INCOMING = ".incoming"
"""Where the driver unpacks a run before renaming it into place (ignored by readers)."""


class TransferError(SarbenchError):
    """What a node sent cannot be installed as a run folder."""


def pack(folder: Path) -> bytes:
    """Every regular file of a run folder but its record, as an uncompressed tar (links
    and anything else that is not a regular file or a folder are left out)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_symlink() or rel.as_posix() == RECORD_FILE:
                continue
            if path.is_dir() or path.is_file():
                tar.add(path, arcname=rel.as_posix(), recursive=False)
    return buffer.getvalue()


def unpack(blob: bytes, dest: Path) -> None:
    """The files of :func:`pack` into ``dest``; a member that is not a plain file or
    folder inside it (a link, a device, an absolute or ``..`` path) is refused."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()) or member.name == RECORD_FILE:
                    raise TransferError(f"refused member {member.name!r} of a run's files")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise TransferError(f"the run's files cannot be unpacked: {exc}") from exc


def install(
    runs_dir: Path, record: RunRecord, blob: bytes
) -> tuple[Literal["ran", "skipped"], RunFolder, RunRecord]:
    """Install a run a node made into ``runs_dir``: ``("ran", folder, record)``, or
    ``("skipped", folder, the record there)`` when the home has its record already."""
    folder = RunFolder(runs_dir / record.run_id)
    with run_lock(runs_dir, record.run_id):
        found = folder.read()
        if found is not None:  # recorded meanwhile: records are never overwritten
            return "skipped", folder, found
        incoming = runs_dir / INCOMING
        for left in incoming.glob(f"{record.run_id}.*"):  # a driver killed while installing
            remove_tree(left)
        work = incoming / f"{record.run_id}.{secrets.token_hex(4)}"
        work.mkdir(parents=True)
        try:
            unpack(blob, work)
            RunFolder(work).save(record)
            if folder.path.exists():  # an unfinished earlier attempt (a killed harness)
                remove_tree(folder.path)
            os.rename(work, folder.path)
        except BaseException:
            remove_tree(work)
            raise
    return "ran", folder, record
