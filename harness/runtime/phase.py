"""What both backends share: mounts, the environment they set, and the result of a phase.

A phase is one run of an entry's command (``train`` or ``predict``) with some host folders
mounted. Mounts are given as ``{host_path: (container_path, "ro" | "rw")}``.

Every mount is also announced in an environment variable, in both backends, named from its
container path: ``/data/train`` -> ``SARBENCH_DATA_TRAIN``, ``/config/run.json`` ->
``SARBENCH_CONFIG_RUN_JSON``. In a container its value is the container path; in the local
backend (no container, no mounts) it is the host path. Code that reads these variables,
with the fixed paths as fallbacks, runs unchanged under both.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.runtime.errors import MountError
from harness.runtime.limits import Limits
from sarbench_io.contract import env_name

PhaseStatus = Literal["ok", "timeout", "oom", "crash", "output_limit", "error"]
MountMode = Literal["ro", "rw"]
Mounts = Mapping[str | os.PathLike[str], tuple[str, MountMode]]

# Container paths that the runtime owns: a mount there would hide or replace them.
_RESERVED = ("/tmp", "/proc", "/sys", "/dev", "/etc")


@dataclass(frozen=True)
class Mount:
    """One bind mount: a host path seen at ``target`` inside the container."""

    host: Path
    target: str
    mode: MountMode

    @property
    def read_only(self) -> bool:
        return self.mode == "ro"

    @property
    def env_name(self) -> str:
        return mount_env_name(self.target)


@dataclass(frozen=True)
class PhaseResult:
    """How one phase ended.

    - ``status``: ``ok`` (exit 0), ``timeout`` (killed at the wall-clock limit), ``oom``
      (killed at the memory limit), ``crash`` (non-zero exit), ``output_limit`` (wrote more
      than the output cap into its writable mounts; killed if still running), ``error``
      (the command could not be started at all, e.g. no such executable in the image).
    - ``exit_code``: the process's exit code (128 + signal when killed by one); ``None``
      where it never ran.
    - ``wall_s``: seconds from the process's start to its end.
    - ``peak_memory_bytes``: the highest memory use seen (cgroup figure, page cache
      included), ``None`` where the backend cannot tell.
    - ``log_tail``: the last lines of stdout and stderr together.
    - ``image_id``: the ID of the image it ran (``sha256:...``); ``None`` for ``local``.
    - ``isolated``: ``False`` for the local backend; such results never enter the
      official table.
    - ``reason``: one line for people, saying why it ended as it did.
    - ``output_bytes``: bytes the writable mounts use at the end: allocated blocks (so
      space reserved with ``fallocate`` counts), never less than the apparent size.
    - ``stderr_tail``: the last lines of stderr alone, where the backend keeps the streams
      apart (docker); empty otherwise (local merges them in order into ``log_tail``).
    """

    status: PhaseStatus
    exit_code: int | None
    wall_s: float
    peak_memory_bytes: int | None
    log_tail: str
    image_id: str | None
    isolated: bool = True
    reason: str = ""
    output_bytes: int | None = None
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a run record."""
        return asdict(self)


def mount_env_name(target: str) -> str:
    """The environment variable that announces a mount: ``/data/train`` -> ``SARBENCH_DATA_TRAIN``
    (the rule containers read it by: :func:`sarbench_io.contract.env_name`)."""
    return env_name(target)


def check_mounts(mounts: Mounts) -> list[Mount]:
    """Turn the mapping into checked :class:`Mount` objects, or raise :class:`MountError`.

    Host paths must exist; writable ones must be folders. Container paths must be absolute,
    distinct, and outside the paths the runtime owns (``/tmp``, ``/proc``, ``/sys``,
    ``/dev``, ``/etc``).
    """
    checked: list[Mount] = []
    seen: dict[str, Path] = {}
    for host_path, spec in mounts.items():
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise MountError(
                f"mount of {host_path}: give (container_path, 'ro' | 'rw'), got {spec!r}"
            )
        target, mode = spec
        host = Path(host_path).absolute()
        if mode not in ("ro", "rw"):
            raise MountError(f"mount of {host}: mode must be 'ro' or 'rw', got {mode!r}")
        norm = posixpath.normpath(target) if isinstance(target, str) else ""
        if not norm.startswith("/") or norm != target or norm == "/":
            raise MountError(
                f"mount of {host}: container path must be absolute and normalised "
                f"(like /data/train), got {target!r}"
            )
        if any(norm == r or norm.startswith(r + "/") for r in _RESERVED):
            raise MountError(
                f"mount of {host} at {target}: that path belongs to the runtime "
                f"({', '.join(_RESERVED)}); choose another"
            )
        if norm in seen:
            raise MountError(f"{host} and {seen[norm]} are both mounted at {target}")
        if mount_env_name(norm) in {m.env_name for m in checked}:
            raise MountError(f"mount at {target} has the same variable name as another")
        if not host.exists():
            raise MountError(f"mount of {host} at {target}: the host path does not exist")
        if mode == "rw" and not host.is_dir():
            raise MountError(f"writable mount {host} at {target} must be a folder")
        seen[norm] = host
        checked.append(Mount(host=host, target=norm, mode=mode))
    return checked


def mount_env(mounts: Iterable[Mount], *, host_paths: bool) -> dict[str, str]:
    """``SARBENCH_*`` variables for the mounts: container paths, or host paths if asked."""
    return {m.env_name: str(m.host) if host_paths else m.target for m in mounts}


def prepare_writable(folder: Path, uid: int, gid: int) -> str:
    """Make ``folder`` writable for ``uid:gid``; return what was done.

    - the harness runs as root: ``chown -R uid:gid`` the folder (files the container
      writes are then owned by ``uid``, and root can still remove them): ``"chown"``;
    - the folder already belongs to ``uid``: nothing: ``"none"``;
    - otherwise: ``chmod 0777`` on the folder itself: ``"chmod"`` (what the container
      creates inside belongs to ``uid``; removing its subfolders later may need root).
    """
    if os.geteuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
        return "chown"
    if folder.stat().st_uid == uid:
        return "none"
    folder.chmod(0o777)
    return "chmod"


def output_usage(folders: Iterable[Path]) -> tuple[int, int]:
    """(bytes, files) in the writable folders: the scratch filesystem's own counters where
    the runner made one, else a ``du`` walk that survives any tree (see
    :func:`harness.runtime.scratch.tree_usage`)."""
    from harness.runtime.scratch import tree_usage

    return tree_usage(list(folders))


def over_output_cap(usage: tuple[int, int], limits: Limits) -> bool:
    """Whether (bytes, files) is over the phase's output cap or its file count."""
    used, files = usage
    return used > limits.output_cap_bytes or files > limits.output_inodes


def output_reason(usage: tuple[int, int], limits: Limits) -> str:
    used, files = usage
    if files > limits.output_inodes:
        return (
            f"made {files} files or more in its writable mounts; the limit is "
            f"{limits.output_inodes}"
        )
    return (
        f"wrote {used} bytes or more into its writable mounts; the cap is {limits.output_cap_bytes}"
    )


def tail_lines(text: str, n: int) -> str:
    """The last ``n`` lines of ``text``."""
    return "\n".join(text.splitlines()[-n:]) if n > 0 else ""


# exit 137 (SIGKILL) that we did not send, with memory this close to the limit, is an OOM kill
_OOM_FRACTION = 0.9


def classify(
    *,
    exit_code: int,
    oom_killed: bool,
    timed_out: bool,
    output_exceeded: bool,
    peak: int | None,
    limits: Limits,
    output_bytes: int,
    output_files: int = 0,
) -> tuple[PhaseStatus, str]:
    """How a phase ended, and one line saying why: the one classification both backends
    use (the local backend never sees ``oom_killed`` nor a peak near the limit)."""
    if timed_out:
        return "timeout", f"killed at the wall-clock limit of {limits.timeout_s:g} s"
    if output_exceeded:
        return "output_limit", output_reason((output_bytes, output_files), limits)
    near_limit = peak is not None and peak >= _OOM_FRACTION * limits.memory_bytes
    if oom_killed or (exit_code == 137 and near_limit):
        return "oom", f"killed at the memory limit of {limits.memory_bytes} bytes"
    if exit_code == 0:
        return "ok", "exited with code 0"
    return "crash", f"exited with code {exit_code}"
