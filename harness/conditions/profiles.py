"""Conditions profiles: ``profiles/<name>.toml``, the same for every entry of a benchmark run.

A profile fixes the resources (CPU quota, memory, optional cpuset, GPU model or none), the
limits of each phase (wall clock, processes, ``/dev/shm``, ``/tmp``, log and output caps)
and the seeds. Sizes are written like ``"8GiB"`` or ``"512MiB"``. See
``docs/contract.md`` for the format.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SarbenchError, UnknownNameError
from harness.runtime.errors import LimitsError
from harness.runtime.limits import Limits

_UNITS = {"": 1, "B": 1, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]iB|B)?\s*$", re.IGNORECASE)
_LIMIT_KEYS = {
    "timeout_s": "timeout_s",
    "pids": "pids",
    "shm": "shm_bytes",
    "tmpfs": "tmpfs_bytes",
    "log_cap": "log_cap_bytes",
    "output_cap": "output_cap_bytes",
    "output_inodes": "output_inodes",
}
PHASES = ("train", "predict")


class ProfileError(SarbenchError):
    """A malformed profile file; lists every problem and names the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid conditions profile:\n{lines}")
        self.path, self.problems = path, problems


def parse_size(value: Any) -> int:
    """``"8GiB"`` -> bytes; an integer is bytes already."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size like '8GiB' or '512MiB': {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


@dataclass(frozen=True)
class Profile:
    """One conditions profile.

    - ``cpus``, ``memory_bytes``, ``cpuset``: what every phase gets;
    - ``gpu_model``: the GPU every run must have (``nvidia-smi``'s name, like
      ``"NVIDIA H100 80GB HBM3"``), or ``None`` for a CPU-only profile;
    - ``phase_limits``: per phase, the :class:`Limits` fields the file sets;
    - ``seeds``: the seeds every entry runs with.
    """

    name: str
    description: str
    cpus: float
    memory_bytes: int
    cpuset: str | None
    gpu_model: str | None
    seeds: tuple[int, ...]
    phase_limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def limits(self, phase: str, gpu_uuid: str | None = None) -> Limits:
        """The :class:`Limits` of ``phase`` under this profile, on the GPU chosen for it."""
        return Limits(
            memory_bytes=self.memory_bytes,
            cpus=self.cpus,
            cpuset=self.cpuset,
            gpu_uuid=gpu_uuid,
            **self.phase_limits.get(phase, {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for records and the conditions fingerprint."""
        return {
            "name": self.name,
            "description": self.description,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
            "cpuset": self.cpuset,
            "gpu_model": self.gpu_model,
            "seeds": list(self.seeds),
            "limits": {phase: self.limits(phase).to_dict() for phase in PHASES},
        }


def load_profile(path: Path) -> Profile:
    """Read and check a profile file; every problem is listed in one :class:`ProfileError`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(path, [f"cannot read: {exc}"]) from None
    problems: list[str] = []
    known = {"name", "description", "seeds", "resources", "limits"}
    for key in sorted(set(raw) - known):
        problems.append(f"unknown key `{key}` (known: {', '.join(sorted(known))})")
    name = raw.get("name")
    if name != path.stem:
        problems.append(f"`name` must equal the file name stem {path.stem!r}, got {name!r}")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        problems.append(f"`seeds` must be a non-empty list of integers, got {seeds!r}")
        seeds = [0]
    res = raw.get("resources", {})
    cpus = res.get("cpus", 2.0)
    if not isinstance(cpus, (int, float)) or cpus <= 0:
        problems.append(f"`resources.cpus` must be a positive number, got {cpus!r}")
        cpus = 1.0
    try:
        memory = parse_size(res.get("memory", "8GiB"))
    except ValueError as exc:
        problems.append(f"`resources.memory`: {exc}")
        memory = 0
    gpu_model = res.get("gpu_model")
    if gpu_model is not None and (not isinstance(gpu_model, str) or not gpu_model):
        problems.append(f"`resources.gpu_model` must be a GPU name, got {gpu_model!r}")
    phase_limits = _phase_limits(raw.get("limits", {}), problems)
    profile = Profile(
        name=str(name),
        description=str(raw.get("description", "")),
        cpus=float(cpus),
        memory_bytes=memory,
        cpuset=res.get("cpuset"),
        gpu_model=gpu_model,
        seeds=tuple(seeds),
        phase_limits=phase_limits,
        path=path,
    )
    if not problems:
        for phase in PHASES:
            try:
                profile.limits(phase)
            except LimitsError as exc:
                problems.append(f"limits of {phase}: {exc}")
    if problems:
        raise ProfileError(path, problems)
    return profile


def _phase_limits(raw: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    """``[limits]`` (every phase) and ``[limits.train]``/``[limits.predict]`` (one phase)."""
    if not isinstance(raw, dict):
        problems.append(f"`limits` must be a table, got {raw!r}")
        return {}
    common = {k: v for k, v in raw.items() if k not in PHASES}
    out: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        table = {**common, **raw.get(phase, {})}
        converted: dict[str, Any] = {}
        for key, value in table.items():
            if key not in _LIMIT_KEYS:
                problems.append(
                    f"unknown limit `{key}` (known: {', '.join(_LIMIT_KEYS)}, train, predict)"
                )
                continue
            try:
                if key in ("timeout_s",):
                    converted[_LIMIT_KEYS[key]] = float(value)
                elif key == "pids":
                    converted[_LIMIT_KEYS[key]] = int(value)
                else:
                    converted[_LIMIT_KEYS[key]] = parse_size(value)
            except (TypeError, ValueError) as exc:
                problems.append(f"limit `{key}` of {phase}: {exc}")
        out[phase] = converted
    return out


def get_profile(profiles_dir: Path, name: str) -> Profile:
    """The profile called ``name``; an unknown name gets a suggestion."""
    path = profiles_dir / f"{name}.toml"
    if not path.is_file():
        raise UnknownNameError(
            "conditions profile", name, [p.stem for p in profiles_dir.glob("*.toml")]
        )
    return load_profile(path)
