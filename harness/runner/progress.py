"""Live progress of a running phase in the terminal: its log lines as the entry prints
them, each with the phase's elapsed time and its limit.

On a terminal, one status line is rewritten in place (``train 42 s / 15 min | epoch 3 ...``)
and cleared when the phase ends; elsewhere (a pipe, a CI log) every line is printed as it
comes, prefixed the same way. The whole log is in ``<home>/runs/<run>/logs/<phase>.log``
while the phase runs: ``tail -f`` it from another terminal.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

from harness.numbers import duration
from harness.runtime.livelog import OnLine


def _label(run_id: str) -> str:
    """``unet/default s0`` of ``unet.default.s0.flood-synth.0a1b2c3d4e5f``."""
    parts = run_id.split(".")
    if len(parts) < 3:
        return run_id
    return f"{parts[0]}/{parts[1]} {parts[2]}"


class PhaseLines:
    """A factory for :attr:`harness.runner.run.RunContext.phase_lines`: ``(run ID, phase,
    limit in s)`` -> the callback that shows that phase's lines on ``stream``."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.lock = threading.Lock()
        self.shown = False

    def __call__(self, run_id: str, phase: str, limit_s: float) -> OnLine:
        started = time.monotonic()

        def on_line(line: str) -> None:
            head = f"{phase} {duration(time.monotonic() - started)} / {duration(limit_s)}"
            if self.live:  # which run: two may run at once, on one status line
                head = f"{_label(run_id)} {head}"
            with self.lock:
                if self.live:
                    width = shutil.get_terminal_size((100, 20)).columns
                    text = f"  {head} | {line}"[: max(width - 1, 20)]
                    self.stream.write(f"\r\x1b[K{text}")
                    self.shown = True
                else:
                    self.stream.write(f"  [{run_id} {head}] {line}\n")
                self.stream.flush()

        return on_line

    def clear(self) -> None:
        """Remove the status line (before a run's summary is printed)."""
        with self.lock:
            if self.live and self.shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.shown = False
