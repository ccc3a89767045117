"""The debugging backend: a phase as a plain subprocess on this machine. Not isolated.

Same signature as :func:`harness.runtime.docker_backend.run_phase`; ``client``, ``image``
and ``labels`` are accepted and ignored, and ``command`` must be a command for *this*
machine (not the image's). Its results carry ``isolated=False`` and never enter the
official table.

How the container contract maps onto a subprocess:

- mounts: nothing is mounted and no path is rewritten. Each mount is announced in its
  ``SARBENCH_*`` variable (see :mod:`harness.runtime.phase`) whose value here is the host
  path; code that reads those variables finds its folders. Read-only is not enforced.
- ``/tmp``: ``TMPDIR`` points to a fresh folder, removed afterwards.
- environment: this process's environment, then ``env``, then the mount variables.
- limits: the wall-clock limit (the whole process group is killed), the log cap (only the
  newest ``log_cap_bytes`` are kept) and the output cap (checked every
  ``output_check_s`` and at exit) hold. Memory, CPU, pids and GPU limits do not: there is
  no ``oom`` status here. ``peak_memory_bytes`` is the largest resident set of the
  process or of any descendant it waited for (``ru_maxrss``), not a cgroup figure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

from harness.runtime.limits import Limits
from harness.runtime.livelog import LiveLog, OnLine
from harness.runtime.phase import (
    Mounts,
    PhaseResult,
    PhaseStatus,
    check_mounts,
    classify,
    mount_env,
    output_usage,
    over_output_cap,
    tail_lines,
)

DEFAULT_TAIL_LINES = 50
_POLL_S = 0.02


def run_phase(
    client: Any,
    image: str,
    command: Sequence[str],
    mounts: Mounts,
    limits: Limits,
    labels: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    tail: int = DEFAULT_TAIL_LINES,
    log_path: Path | None = None,
    on_line: OnLine | None = None,
) -> PhaseResult:
    """Run ``command`` as a subprocess under the limits this backend can hold (see above).
    ``log_path`` and ``on_line`` get the log as it comes (:mod:`harness.runtime.livelog`).

    ``cwd`` defaults to the fresh temporary folder that ``TMPDIR`` names.
    """
    del client, image, labels  # the signature is shared with the docker backend
    if isinstance(command, str):
        raise TypeError("give the command as a list of arguments, not one string")
    checked = check_mounts(mounts)
    writable = [m.host for m in checked if not m.read_only]
    with tempfile.TemporaryDirectory(prefix="sarbench-local-") as tmp:
        environment = {
            **os.environ,
            "TMPDIR": tmp,
            **(env or {}),
            **mount_env(checked, host_paths=True),
        }
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=cwd or tmp,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            return PhaseResult(
                status="error",
                exit_code=None,
                wall_s=0.0,
                peak_memory_bytes=None,
                log_tail=str(exc),
                image_id=None,
                isolated=False,
                reason=f"the command could not be started: {exc}",
            )
        pipe = cast(IO[bytes], proc.stdout)  # stdout=PIPE above
        live = LiveLog(log_path, on_line, limits.log_cap_bytes)
        reader = _TailReader(pipe, limits.log_cap_bytes, live)
        reader.start()
        try:
            exit_code, maxrss, killed_for = _wait(proc, writable, limits, started)
        finally:
            _kill_group(proc.pid)  # also whatever it left running
            reader.join(timeout=10)
            pipe.close()
            live.close()
        wall_s = time.monotonic() - started
    log = reader.collected()
    if log_path is not None:
        log_path.write_bytes(log)
    usage = output_usage(writable)
    output_bytes = usage[0]
    if killed_for is None and over_output_cap(usage, limits):
        killed_for = "output_limit"
    status, reason = classify(
        exit_code=exit_code,
        oom_killed=False,
        timed_out=killed_for == "timeout",
        output_exceeded=killed_for == "output_limit",
        peak=None,
        limits=limits,
        output_bytes=usage[0],
        output_files=usage[1],
    )
    return PhaseResult(
        status=status,
        exit_code=exit_code,
        wall_s=wall_s,
        peak_memory_bytes=maxrss,
        log_tail=tail_lines(log.decode("utf-8", errors="replace"), tail),
        image_id=None,
        isolated=False,
        reason=reason,
        output_bytes=output_bytes,
    )


def _wait(
    proc: subprocess.Popen[bytes], writable: list[Path], limits: Limits, started: float
) -> tuple[int, int, PhaseStatus | None]:
    """Reap the process; kill its group at the deadline or over the output cap.

    Returns (exit code with 128 + signal for a signal, ``ru_maxrss`` in bytes, why we
    killed it or ``None``).
    """
    deadline = started + limits.timeout_s
    next_output_check = started + limits.output_check_s
    killed_for: PhaseStatus | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        now = time.monotonic()
        if killed_for is None and now >= deadline:
            killed_for = "timeout"
            _kill_group(proc.pid)
        elif killed_for is None and writable and now >= next_output_check:
            next_output_check = now + limits.output_check_s
            if over_output_cap(output_usage(writable), limits):
                killed_for = "output_limit"
                _kill_group(proc.pid)
        time.sleep(_POLL_S)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, so that Popen does not try again
    return (128 - code if code < 0 else code), usage.ru_maxrss * 1024, killed_for


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has already ended
        os.killpg(pgid, signal.SIGKILL)


class _TailReader(threading.Thread):
    """Reads a pipe to its end, keeping only the newest ``cap`` bytes."""

    def __init__(self, pipe: IO[bytes], cap: int, live: LiveLog | None = None) -> None:
        super().__init__(name="sarbench-local-log", daemon=True)
        self.pipe, self.cap, self.live = pipe, cap, live
        self.buffer = bytearray()
        self.lock = threading.Lock()

    def run(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # closed after a descendant outside the group kept it open
                return
            if not chunk:
                return
            if self.live is not None:
                self.live.feed(chunk)
            with self.lock:
                self.buffer += chunk
                if len(self.buffer) > self.cap:
                    del self.buffer[: len(self.buffer) - self.cap]

    def collected(self) -> bytes:
        with self.lock:
            return bytes(self.buffer)
