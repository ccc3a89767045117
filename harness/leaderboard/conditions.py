"""The index page's Conditions section: each profile the runs used, as readable tables.

A profile (a record's ``profile``) holds a few settings (description, CPUs, memory, GPU
model, seeds) and ``limits``, one mapping per phase (train, predict) of the same limits.
The settings become a two-column table; the limits one table with a row per limit and a
column per phase. Values are formatted by their name's unit: ``*_bytes`` as bytes
(:func:`harness.numbers.size`), ``*_s`` as a duration, counts with separators, None as
``none``. The fingerprint and the machines seen come with each profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.leaderboard.source import PublishedRun
from harness.numbers import by_name, count
from harness.record import RunRecord

UNITS = ("_bytes", "_s")
NAMES = {"shm": "shared memory (/dev/shm)", "tmpfs": "tmpfs /tmp", "pids": "processes (pids)"}


def label(key: str) -> str:
    """A limit's name for people: ``log_cap_bytes`` -> ``log cap``, ``timeout_s`` ->
    ``timeout``, ``gpu_uuid`` -> ``GPU UUID``."""
    for suffix in UNITS:
        if key.endswith(suffix):
            key = key.removesuffix(suffix)
            break
    key = NAMES.get(key, key)
    return key.replace("_", " ").replace("gpu", "GPU").replace("uuid", "UUID").replace("cpu", "CPU")


def value(key: str, v: Any) -> str:
    """A setting or limit's value, formatted by the unit its name carries.

    >>> value("memory_bytes", 8589934592), value("timeout_s", 900.0), value("cpus", 2.0)
    ('8 GiB', '15 min', '2')
    >>> value("seeds", [0, 1]), value("gpu_model", None), value("pids", 20000)
    ('0, 1', 'none', '20,000')
    """
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not key.endswith(UNITS):
        return count(v)
    if isinstance(v, int | float):
        return by_name(key, v)
    if isinstance(v, list | tuple):
        return ", ".join(value(key, x) for x in v)
    if isinstance(v, Mapping):
        return "; ".join(f"{label(k)} {value(k, x)}" for k, x in v.items())
    return str(v)


@dataclass(frozen=True)
class Conditions:
    """Runs that share a profile and a conditions fingerprint: the profile's settings
    (label, value), its limits (label, one value per phase of ``phases``), the machines
    seen, and the runs that recorded a mismatch."""

    profile: str
    fingerprint: str
    settings: tuple[tuple[str, str], ...]
    phases: tuple[str, ...]
    limits: tuple[tuple[str, tuple[str, ...]], ...]
    machines: tuple[str, ...]
    runs: int
    mismatched: tuple[str, ...]


def tables(
    profile: Mapping[str, Any],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """(settings, phases, limits) of a profile: see :class:`Conditions`."""
    settings = tuple(
        (label(k), value(k, v)) for k, v in profile.items() if k not in ("name", "limits")
    )
    limits = profile.get("limits")
    if not isinstance(limits, Mapping):
        return settings, (), ()
    phases = tuple(p for p, lim in limits.items() if isinstance(lim, Mapping))
    keys: list[str] = []
    for p in phases:
        keys += [k for k in limits[p] if k not in keys]
    rows = tuple(
        (label(k), tuple(value(k, limits[p][k]) if k in limits[p] else "—" for p in phases))
        for k in keys
    )
    return settings, phases, rows


def _machine(run: PublishedRun) -> str:
    """One machine a run ran on: where (host, and Ray node when a cluster ran it; runs
    published before these tags say neither), CPU model and GPUs."""
    what = f"{run.tag('cpu_model') or 'unknown CPU'}; GPU: {run.tag('gpus') or 'none'}"
    host, node = run.tag("host"), run.tag("node")
    where = host + (f" (Ray node {node[:12]})" if node else "")
    return f"{where}: {what}" if where else what


def conditions(
    runs: Sequence[PublishedRun], records: Mapping[str, RunRecord | None]
) -> list[Conditions]:
    """The conditions profiles the runs used, with the machines seen, from tags and the
    first readable downloaded record of each (``records`` by MLflow run ID)."""
    groups: dict[tuple[str, str], list[PublishedRun]] = defaultdict(list)
    for r in runs:
        groups[(r.tag("profile"), r.tag("conditions"))].append(r)
    out = []
    for (profile, fingerprint), group in sorted(groups.items()):
        record = next((rec for r in group if (rec := records.get(r.mlflow_id))), None)
        settings, phases, limits = tables(record.profile if record else {})
        mismatched = [r.run_id for r in group if r.tag("mismatches", "[]") not in ("[]", "")]
        out.append(
            Conditions(
                profile=profile or "(none)",
                fingerprint=fingerprint,
                settings=settings,
                phases=phases,
                limits=limits,
                machines=tuple(sorted({_machine(r) for r in group})),
                runs=len(group),
                mismatched=tuple(mismatched),
            )
        )
    return out
