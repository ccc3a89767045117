"""Read-only data mounts staged under neutral paths.

A bind mount shows its source's path in the container's ``/proc/self/mountinfo`` (the
host's data root, dataset and split). The docker backend therefore mounts, instead of the
data folders themselves, read-only copies of them on filesystems of their own
(:class:`harness.runtime.scratch.Snapshot`): inside the container each shows as ``/`` of a
loop device. A copy is made once per process for each (folder, dataset digest), right after
the dataset was verified, and shared by every run of that process; all are unmounted and
deleted when the process exits.

The copies live under ``<home>/.stage/<pid>-<random>/``, beside a lock file held while
the process lives: :func:`reap_stages` (every harness start) removes the stage folders of
processes that are gone, mounts and all.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import threading
from pathlib import Path

from harness.runtime.scratch import Snapshot, remove_tree
from harness.runtime.watchdog import lock_is_free

_LOCK = threading.Lock()


class _Stage:
    """This process's stage folder and its snapshots."""

    def __init__(self, home: Path) -> None:
        root = home / ".stage"
        root.mkdir(parents=True, exist_ok=True)
        self.folder = root / f"{os.getpid()}-{secrets.token_hex(4)}"
        # the lock is held before the folder exists: a reaper never sees a folder of a live
        # process with a free lock
        self.lock_fd = os.open(self.folder.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        self.folder.mkdir()
        self.snapshots: dict[tuple[Path, str], Snapshot] = {}

    def get(self, source: Path, digest: str) -> Path:
        key = (source.resolve(), digest)
        if key not in self.snapshots:
            n = len(self.snapshots)
            self.snapshots[key] = Snapshot.create(
                source, self.folder / f"{n}.img", self.folder / f"{n}"
            )
        return self.snapshots[key].mountpoint

    def close(self) -> None:
        for snapshot in self.snapshots.values():
            snapshot.close()
        self.snapshots.clear()
        remove_tree(self.folder)
        self.folder.with_suffix(".lock").unlink(missing_ok=True)
        os.close(self.lock_fd)


_STAGES: dict[Path, _Stage] = {}


def staged(home: Path, source: Path, digest: str) -> Path:
    """The mount point of a read-only copy of ``source`` (a folder of the dataset whose
    verified digest is ``digest``), made on first use in this process."""
    with _LOCK:
        if not _STAGES:
            atexit.register(close_stages)
        stage = _STAGES.get(home)
        if stage is None:
            stage = _STAGES[home] = _Stage(home)
        return stage.get(source, digest)


def close_stages() -> None:
    """Unmount and delete every copy this process made."""
    with _LOCK:
        for stage in _STAGES.values():
            stage.close()
        _STAGES.clear()


def reap_stages(home: Path) -> list[str]:
    """Remove the stage folders of harness processes that are gone (their lock is free)."""
    root = home / ".stage"
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        lock = folder.with_suffix(".lock")
        if not lock_is_free(str(lock)):
            continue  # its process is alive (or it has no lock yet)
        remove_tree(folder)
        lock.unlink(missing_ok=True)
        removed.append(folder.name)
    return removed
