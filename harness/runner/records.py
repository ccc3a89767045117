"""Run locks: a per-run lock file (``fcntl.flock``) keeps two harness processes from
running the same run at once. The record, its key and its folder are :mod:`harness.record`:
a run folder is ``<home>/runs/<run_id>/``, its ID derived from the run's key, so running the
same thing again finds the finished record instead of making a second one; a folder without
``record.json`` is an unfinished run that the next ``sarbench run`` starts again.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import SarbenchError


class RunBusyError(SarbenchError):
    """Another harness process is running this run right now."""


def lock_path(runs_dir: Path, run_id: str) -> Path:
    """The lock file of one run (see :func:`run_lock`)."""
    return runs_dir / ".locks" / f"{run_id}.lock"


@contextmanager
def run_lock(runs_dir: Path, run_id: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the lock of one run: wait for another process holding it (``wait``), or raise
    :class:`RunBusyError` at once.

    The lock is an ``flock`` on ``<runs>/.locks/<run_id>.lock``: the kernel releases it when
    its holder dies, however it dies, so a killed harness never leaves a stale lock.
    """
    path = lock_path(runs_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"run {run_id} is being run by another sarbench process") from None
        yield
    finally:
        os.close(fd)
