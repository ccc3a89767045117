"""Resource limits of one phase (one container run), typed and checked once.

The defaults fit a CPU machine with at least 2 cores and 16 GiB of memory; a conditions
profile sets its own per phase. Sizes are bytes, times are seconds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.runtime.errors import LimitsError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_GPU_UUID = re.compile(r"^(GPU|MIG)-[0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Limits:
    """What one phase may use.

    - ``memory_bytes``: memory limit; swap is the same figure (memory == memory+swap), so
      the container can never swap. Page cache and tmpfs files (``/tmp``, ``/dev/shm``)
      count against it.
    - ``cpus``: CPU quota in cores (may be fractional); ``cpuset``: the cores it may run
      on, in Docker's form (``"0-3"``, ``"0,2"``), or ``None`` for any.
    - ``pids``: most processes and threads at once.
    - ``shm_bytes``: size of ``/dev/shm`` (data-loader workers use it).
    - ``timeout_s``: wall-clock limit; the container is killed at it (status ``timeout``).
    - ``log_cap_bytes``: the most log kept (stdout and stderr together, the newest part;
      the engine's framing counts against it, so somewhat less text survives a flood).
    - ``output_cap_bytes``: most bytes in all writable mounts together; checked every
      ``output_check_s`` seconds while it runs and at exit (status ``output_limit``); the
      runner also gives each writable mount a filesystem of exactly this size, so the
      kernel stops writes there (:mod:`harness.runtime.scratch`).
    - ``output_inodes``: most files and folders in all writable mounts together (an empty
      file costs no bytes but is still a file); enforced with the output cap.
    - ``tmpfs_bytes``: size of the tmpfs at ``/tmp``.
    - ``gpu_uuid``: the one GPU it sees (``GPU-...`` or ``MIG-...``), or ``None`` for none.
    """

    memory_bytes: int = 8 * GiB
    cpus: float = 2.0
    cpuset: str | None = None
    pids: int = 512
    shm_bytes: int = 512 * MiB
    timeout_s: float = 3600.0
    log_cap_bytes: int = 10 * MiB
    output_cap_bytes: int = 2 * GiB
    output_inodes: int = 20_000
    tmpfs_bytes: int = 1 * GiB
    gpu_uuid: str | None = None
    output_check_s: float = 0.5

    def __post_init__(self) -> None:
        problems: list[str] = []
        sizes = {
            "memory_bytes": (self.memory_bytes, 6 * MiB),  # the engine refuses less than 6 MiB
            "shm_bytes": (self.shm_bytes, 1),
            "log_cap_bytes": (self.log_cap_bytes, 8 * KiB),
            "output_cap_bytes": (self.output_cap_bytes, 0),
            "tmpfs_bytes": (self.tmpfs_bytes, 1),
        }
        for name, (value, least) in sizes.items():
            if not isinstance(value, int) or value < least:
                problems.append(f"{name} must be an integer >= {least}, got {value!r}")
        if not self.cpus > 0:
            problems.append(f"cpus must be > 0, got {self.cpus!r}")
        if not isinstance(self.output_inodes, int) or self.output_inodes < 16:
            problems.append(f"output_inodes must be an integer >= 16, got {self.output_inodes!r}")
        if not isinstance(self.pids, int) or self.pids < 1:
            problems.append(f"pids must be an integer >= 1, got {self.pids!r}")
        if not self.timeout_s > 0:
            problems.append(f"timeout_s must be > 0, got {self.timeout_s!r}")
        if not self.output_check_s > 0:
            problems.append(f"output_check_s must be > 0, got {self.output_check_s!r}")
        if self.cpuset is not None and not _CPUSET.match(self.cpuset):
            problems.append(f"cpuset must look like '0-3' or '0,2', got {self.cpuset!r}")
        if self.gpu_uuid is not None and not _GPU_UUID.match(self.gpu_uuid):
            problems.append(
                f"gpu_uuid must be a UUID as `nvidia-smi -L` prints it (GPU-...), "
                f"got {self.gpu_uuid!r}"
            )
        if problems:
            raise LimitsError("invalid limits: " + "; ".join(problems))

    @property
    def nano_cpus(self) -> int:
        """The CPU quota as Docker's ``NanoCpus`` (1e9 per core)."""
        return round(self.cpus * 1e9)

    def cpuset_cores(self) -> list[int]:
        """The cores of ``cpuset``, expanded (empty for ``None``)."""
        if self.cpuset is None:
            return []
        cores: list[int] = []
        for part in self.cpuset.split(","):
            first, _, last = part.partition("-")
            cores.extend(range(int(first), int(last or first) + 1))
        return sorted(set(cores))

    def replace(self, **changes: Any) -> Limits:
        """A copy with some fields changed (checked again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a run record."""
        return asdict(self)
