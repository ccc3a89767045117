"""What the machine is: CPU model, cores, memory and GPUs (``nvidia-smi``), and whether it
can give what a conditions profile asks.

The probe is recorded in every run record; :func:`check` lists every mismatch between the
profile and the machine, and :func:`conditions` refuses to go on with any unless told to
(``allow_mismatch``), in which case the mismatches are recorded with the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.conditions.profiles import Profile
from harness.errors import SarbenchError

_GPU_FIELDS = "name,uuid,driver_version,clocks.max.sm,memory.total"
_SAMPLE_FIELDS = "uuid,memory.used,utilization.gpu,power.draw"


class ConditionsMismatchError(SarbenchError):
    """The machine cannot give what the profile asks; lists every mismatch."""

    def __init__(self, profile: str, mismatches: list[str]) -> None:
        lines = "\n".join(f"  - {m}" for m in mismatches)
        super().__init__(
            f"this machine does not meet conditions profile {profile!r}:\n{lines}\n"
            "Run on a machine that does, choose another profile (--profile), or pass "
            "--allow-mismatch to run anyway (the mismatch is recorded with every run)."
        )
        self.mismatches = mismatches


@dataclass(frozen=True)
class Gpu:
    name: str
    uuid: str
    driver: str
    sm_clock_max_mhz: float | None
    memory_bytes: int | None


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cpus: int
    memory_bytes: int
    gpus: tuple[Gpu, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Conditions:
    """What a benchmark run works under: the profile, the machine, the chosen GPU."""

    profile: Profile
    machine: Machine
    gpu_uuid: str | None
    mismatches: tuple[str, ...] = ()
    mismatch_allowed: bool = False
    fingerprint: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "machine": self.machine.to_dict(),
            "gpu_uuid": self.gpu_uuid,
            "mismatches": list(self.mismatches),
            "mismatch_allowed": self.mismatch_allowed,
        }


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model"):
            return value.strip()
    return "unknown"


def _memory_bytes(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_gpus(csv_text: str) -> tuple[Gpu, ...]:
    """Parse ``nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm,memory.total
    --format=csv,noheader,nounits`` output."""
    gpus = []
    for line in csv_text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        name, uuid, driver, clock, memory = parts
        mib = _number(memory)
        gpus.append(
            Gpu(
                name=name,
                uuid=uuid,
                driver=driver,
                sm_clock_max_mhz=_number(clock),
                memory_bytes=int(mib * 1024 * 1024) if mib is not None else None,
            )
        )
    return tuple(gpus)


def _nvidia_smi(query: str, fields: str) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, f"--query-{query}={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def probe(proc: Path = Path("/proc")) -> Machine:
    """This machine: CPU model and usable cores, memory, and every NVIDIA GPU."""
    try:
        cpu_model = _cpu_model((proc / "cpuinfo").read_text())
        memory = _memory_bytes((proc / "meminfo").read_text())
    except OSError:
        cpu_model, memory = "unknown", 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    smi = _nvidia_smi("gpu", _GPU_FIELDS)
    return Machine(
        cpu_model=cpu_model,
        cpus=int(cpus or 1),
        memory_bytes=memory,
        gpus=parse_gpus(smi) if smi else (),
    )


def check(profile: Profile, machine: Machine) -> tuple[list[str], str | None]:
    """Every mismatch between profile and machine, and the GPU chosen (by UUID) if any."""
    mismatches: list[str] = []
    if profile.cpus > machine.cpus:
        mismatches.append(
            f"the profile asks for {profile.cpus:g} CPUs; this machine has {machine.cpus}"
        )
    if machine.memory_bytes and profile.memory_bytes > machine.memory_bytes:
        mismatches.append(
            f"the profile asks for {profile.memory_bytes / 2**30:.1f} GiB of memory; this "
            f"machine has {machine.memory_bytes / 2**30:.1f} GiB"
        )
    cores = Profile.limits(profile, "predict").cpuset_cores()
    if cores and max(cores) >= machine.cpus:
        mismatches.append(
            f"the profile pins cores {profile.cpuset}; this machine has {machine.cpus}"
        )
    gpu_uuid = None
    if profile.gpu_model is not None:
        matching = [g for g in machine.gpus if g.name == profile.gpu_model]
        if matching:
            gpu_uuid = matching[0].uuid
        else:
            seen = ", ".join(sorted({g.name for g in machine.gpus})) or "no NVIDIA GPU"
            mismatches.append(f"the profile needs a {profile.gpu_model}; this machine has {seen}")
    return mismatches, gpu_uuid


def fingerprint(profile: Profile, machine: Machine) -> str:
    """A digest of what makes runs comparable: the whole profile, the CPU model, and the GPU
    model and driver used (not serial numbers or UUIDs)."""
    gpus = [(g.name, g.driver) for g in machine.gpus if g.name == profile.gpu_model]
    doc = {"profile": profile.to_dict(), "cpu_model": machine.cpu_model, "gpus": gpus}
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def conditions(
    profile: Profile, machine: Machine | None = None, *, allow_mismatch: bool = False
) -> Conditions:
    """Probe (unless given) and check; a mismatch raises unless ``allow_mismatch``."""
    machine = machine or probe()
    mismatches, gpu_uuid = check(profile, machine)
    if mismatches and not allow_mismatch:
        raise ConditionsMismatchError(profile.name, mismatches)
    return Conditions(
        profile=profile,
        machine=machine,
        gpu_uuid=gpu_uuid,
        mismatches=tuple(mismatches),
        mismatch_allowed=allow_mismatch and bool(mismatches),
        fingerprint=fingerprint(profile, machine),
    )


class GpuSampler(threading.Thread):
    """Samples one GPU's memory, utilisation and power with ``nvidia-smi`` while a phase
    runs; :meth:`summary` gives peaks, mean utilisation, GPU-seconds and energy (J)."""

    def __init__(self, uuid: str, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.uuid, self.interval_s = uuid, interval_s
        self._stop_event = threading.Event()
        self.samples: list[tuple[float, float | None, float | None, float | None]] = []
        self._start = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            out = _nvidia_smi("gpu", _SAMPLE_FIELDS)
            if out:
                self.add(time.monotonic() - self._start, out)
            self._stop_event.wait(self.interval_s)

    def add(self, t: float, csv_text: str) -> None:
        """Record the line of ``csv_text`` that belongs to this GPU."""
        for line in csv_text.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 4 and parts[0] == self.uuid:
                self.samples.append((t, _number(parts[1]), _number(parts[2]), _number(parts[3])))

    def stop(self) -> dict[str, Any]:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        memory = [m for _, m, _, _ in self.samples if m is not None]
        util = [u for _, _, u, _ in self.samples if u is not None]
        energy = 0.0
        for (t0, _, _, p0), (t1, _, _, p1) in zip(self.samples, self.samples[1:], strict=False):
            if p0 is not None and p1 is not None:
                energy += (p0 + p1) / 2 * (t1 - t0)
        span = self.samples[-1][0] - self.samples[0][0] if len(self.samples) > 1 else 0.0
        return {
            "uuid": self.uuid,
            "samples": len(self.samples),
            "peak_memory_bytes": int(max(memory) * 1024 * 1024) if memory else None,
            "mean_utilization": sum(util) / len(util) if util else None,
            "gpu_seconds": span if self.samples else None,
            "energy_j": energy if len(self.samples) > 1 else None,
        }
