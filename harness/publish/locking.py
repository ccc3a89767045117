"""Waiting for a tracking store that another process is using, with a bound.

Two things can be in the way of a publisher:

- another ``sarbench publish`` (or a ``sarbench leaderboard build`` opening a new store):
  publishers take an exclusive ``flock`` on a lock file beside the SQLite file
  (``<db>.sarbench-lock``; for another kind of store, ``<home>/mlflow/locks/<hash>.lock``)
  while they create or migrate the store and while they publish one record, so that store
  creation never races, and two publishers never both create (or one delete) the same run;
- any other program holding a write transaction on the SQLite file (``mlflow ui`` writing,
  a script, a stuck process): SQLite answers "database is locked". The store is probed
  before each operation and the operation is retried.

Either way the publisher waits up to ``wait_s`` seconds (``sarbench publish --wait``),
saying once that it waits, then gives up with a :class:`StoreBusyError` that names the
store and what to do; never a raw database traceback. The kernel releases an ``flock``
when its holder dies, so a killed publisher never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.publish.errors import StoreBusyError, TrackingError

DEFAULT_WAIT_S = 60.0
"""How long publishing waits for a locked store by default (``--wait``)."""
MLFLOW_BUSY_S = 20.0
"""MLflow's own SQLite busy timeout: one statement may wait this long before it fails."""
POLL_S = 0.2

T = TypeVar("T")
Say = Callable[[str], None]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def lock_file(uri: str, home: Path | None = None) -> Path | None:
    """The publish lock of a store: ``<db>.sarbench-lock`` beside a SQLite file, else one
    under ``<home>/mlflow/locks`` (``None`` without a home: such a store is not locked)."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".sarbench-lock")
    if home is None:
        return None
    return home / "mlflow" / "locks" / (hashlib.sha256(uri.encode()).hexdigest()[:16] + ".lock")


def is_locked_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is SQLite's "database is locked" / "busy"."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
        if "database is busy" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def sqlite_free(db: Path, timeout: float) -> bool:
    """Whether a write transaction could start on ``db`` now (waiting up to ``timeout``
    seconds). A file that cannot be opened counts as free: MLflow will say what is wrong."""
    if not db.is_file():
        return True
    uri = f"file:{urllib.parse.quote(str(db.resolve()))}?mode=rw"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=max(timeout, 0.0), isolation_level=None)
    except sqlite3.Error:
        return True
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.Error as exc:
        return not is_locked_error(exc)
    finally:
        con.close()


@dataclass
class StoreGuard:
    """Runs operations on one store: under its publish lock, waiting for SQLite's locks,
    for at most ``wait_s`` seconds of waiting per operation."""

    uri: str
    lock: Path | None
    wait_s: float = DEFAULT_WAIT_S
    say: Say | None = None

    def _tell(self, message: str) -> None:
        if self.say is not None:
            self.say(message)

    def _busy(self, what: str, waited: float) -> StoreBusyError:
        db = sqlite_path(self.uri)
        holder = (
            f"Another program holds a write transaction on {db} (a running `mlflow ui` or "
            f"`mlflow server` writing to it, a script, or a stuck process; `fuser {db}` "
            "names it)"
            if db is not None
            else "Another process is writing to it"
        )
        return StoreBusyError(
            f"MLflow tracking store {self.uri} is locked: {what} failed after waiting "
            f"{waited:.0f} s. {holder}. Let it finish or stop it, then run `sarbench publish` "
            "again: what is already published is kept, and nothing half-written is shown. "
            "`--wait SECONDS` waits longer."
        )

    @contextmanager
    def _held(self, deadline: float, what: str) -> Iterator[None]:
        if self.lock is None:
            yield
            return
        try:
            self.lock.parent.mkdir(parents=True, exist_ok=True)
            fd: int | None = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only store: nothing to serialise (writing will fail anyway)
            fd = None
        if fd is None:
            yield
            return
        try:
            told = False
            start = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"MLflow tracking store {self.uri}: another sarbench process held "
                            f"its publish lock ({self.lock}) for {time.monotonic() - start:.0f} "
                            f"s, so {what} was not done. Let that process finish (or stop it), "
                            "then publish again; `--wait SECONDS` waits longer."
                        ) from None
                    if not told:
                        told = True
                        self._tell(
                            f"another sarbench process is publishing to {self.uri}; waiting "
                            f"up to {self.wait_s:.0f} s for it"
                        )
                    time.sleep(POLL_S)
            yield
        finally:
            os.close(fd)  # releases the flock

    def run(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` under the publish lock, retried while SQLite says the store is locked,
        until ``wait_s`` seconds have passed (then a :class:`StoreBusyError`)."""
        start = time.monotonic()
        deadline = start + self.wait_s
        db = sqlite_path(self.uri)
        told = False

        def wait_told() -> None:
            nonlocal told
            if not told:
                told = True
                self._tell(
                    f"MLflow tracking store {self.uri} is locked by another process; waiting "
                    f"up to {self.wait_s:.0f} s for it (--wait)"
                )

        with self._held(deadline, what):
            while True:
                if db is not None:
                    while not sqlite_free(db, min(1.0, max(deadline - time.monotonic(), 0.0))):
                        wait_told()
                        if time.monotonic() >= deadline:
                            raise self._busy(what, time.monotonic() - start)
                try:
                    return fn()
                except Exception as exc:
                    if not is_locked_error(exc):
                        raise
                    wait_told()
                    if time.monotonic() >= deadline:
                        raise self._busy(what, time.monotonic() - start) from None
                    time.sleep(POLL_S)


def store_error(uri: str, what: str, exc: BaseException) -> TrackingError:
    """A database error (not a lock) as a :class:`TrackingError` naming the store."""
    orig = getattr(exc, "orig", None) or exc
    message = getattr(exc, "message", None) or str(orig).splitlines()[0]
    return TrackingError(f"MLflow tracking store {uri}: {what} failed: {message}")
