"""A running phase's log as it comes, for people: appended to the run's log file (so that
``tail -f <home>/runs/<run>/logs/<phase>.log`` follows it from another terminal) and
handed line by line to a callback (the terminal's progress line).

What a container prints is untrusted: the callback gets each line through
:func:`harness.errors.printable`, the file gets at most the log cap (the phase's final log,
written when it ends, replaces it with the engine's own copy), and a line longer than
:data:`MAX_LINE` is cut.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from harness.errors import printable

OnLine = Callable[[str], None]
"""Called with each printable line of a running phase's log."""

MAX_LINE = 4096
"""Bytes of one line kept for the callback; the rest is cut (the file keeps them)."""


class LiveLog:
    """Feed it the log's bytes as they come (:meth:`feed`), then :meth:`close` it."""

    def __init__(self, path: Path | None, on_line: OnLine | None, cap: int) -> None:
        self.on_line, self.cap = on_line, cap
        self.file: IO[bytes] | None = (
            path.open("wb") if path is not None else None
        )  # closed by close()
        self.written = 0
        self.pending = bytearray()
        self.lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            if self.file is not None and self.written < self.cap:
                part = chunk[: self.cap - self.written]
                self.file.write(part)
                self.file.flush()
                self.written += len(part)
            self.pending += chunk
            *lines, rest = self.pending.split(b"\n")
            self.pending = bytearray(rest[:MAX_LINE])
        for line in lines:
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        text = line[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r")
        if self.on_line is not None and text.strip():
            try:
                self.on_line(printable(text))
            except Exception:  # a broken terminal never fails a phase
                self.on_line = None

    def close(self) -> None:
        with self.lock:
            rest, self.pending = bytes(self.pending), bytearray()
            if self.file is not None:
                self.file.close()
                self.file = None
        if rest:
            self._emit(rest)


def follow(stream: object, live: LiveLog) -> threading.Thread:
    """A daemon thread that feeds ``live`` from ``stream`` (an iterable of byte chunks, e.g.
    the Docker SDK's ``container.logs(stream=True, follow=True)``) until it ends."""

    def pump() -> None:
        try:
            for chunk in stream:  # type: ignore[attr-defined]
                live.feed(chunk)
        except Exception:  # the engine went away: the final log says what
            return

    thread = threading.Thread(target=pump, name="sarbench-live-log", daemon=True)
    thread.start()
    return thread
