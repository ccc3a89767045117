"""``competition.toml``: the benchmarks a queue runs submissions on, and their limits.

Read once into a typed :class:`Competition` and passed in. Where it lives: ``--config``,
else ``$SARBENCH_COMPETITION``, else ``<home>/competition.toml``; without a file the
built-in defaults hold (:data:`DEFAULTS`, one benchmark per embedded dataset). Every
problem of a file is listed at once, naming the file (``docs/competing.md``)::

    teams = ["Team A", "Team B"]       # optional: only these teams may submit
    max_attempts = 3                   # harness failures retried this often

    [defaults]                         # every benchmark, unless it says otherwise
    profile = "paper"                  # the official conditions profile
    runs_per_day = 2                   # scored test runs per team per UTC day
    runs_total = 20                    # ... and in all
    image_cap = "8GiB"                 # docker save size and loaded size, each
    predict_log_cap = "16KiB"          # the predict log a competitor gets back

    [benchmarks.flood-synth]           # a benchmark: one dataset (its task follows)
    dataset = "flood-synth"            # default: the benchmark's name
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.conditions.profiles import parse_size
from harness.errors import SarbenchError, UnknownNameError
from harness.settings import Settings

ENV_VAR = "SARBENCH_COMPETITION"
FILE_NAME = "competition.toml"
_TOP = {"teams", "max_attempts", "defaults", "benchmarks"}
_LIMIT_KEYS = {
    "profile",
    "runs_per_day",
    "runs_total",
    "image_cap",
    "predict_log_cap",
    "allow_public_test",
}
_BENCH_KEYS = _LIMIT_KEYS | {"dataset"}


class CompetitionConfigError(SarbenchError):
    """A ``competition.toml`` that is malformed; lists every problem and names the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid competition file ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Limits:
    """What one benchmark allows (each field: a key of ``[defaults]`` or a benchmark)."""

    profile: str = "paper"
    runs_per_day: int = 2
    runs_total: int = 20
    image_cap: int = 8 * 2**30
    predict_log_cap: int = 16 * 2**10
    allow_public_test: bool = False


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its name (what competitors and quotas name), dataset and limits."""

    name: str
    dataset: str
    limits: Limits


@dataclass(frozen=True)
class Competition:
    """The whole file: the benchmarks by name, who may submit (None: any team) and how
    often a submission that met a harness failure is tried."""

    benchmarks: Mapping[str, Benchmark]
    teams: tuple[str, ...] | None = None
    max_attempts: int = 3
    path: Path | None = None
    default_limits: Limits = field(default_factory=Limits)

    def benchmark(self, name: str) -> Benchmark:
        """The benchmark called ``name``; an unknown name gets a suggestion."""
        if name not in self.benchmarks:
            raise UnknownNameError("benchmark", name, self.benchmarks)
        return self.benchmarks[name]

    def with_limits(self, **changes: Any) -> Competition:
        """A copy whose benchmarks all have ``changes`` applied to their limits (tests)."""
        benchmarks = {
            n: replace(b, limits=replace(b.limits, **changes)) for n, b in self.benchmarks.items()
        }
        return replace(self, benchmarks=benchmarks)


DEFAULTS = Competition(
    benchmarks={name: Benchmark(name, name, Limits()) for name in ("flood-synth", "ndvi-synth")}
)
"""Without a file: the embedded datasets, each a benchmark, under :class:`Limits`' defaults
(our choice: two scored runs per team a day, twenty in all, 8 GiB images, 16 KiB of
predict log, the ``paper`` profile)."""


def config_path(settings: Settings, given: Path | None = None) -> Path:
    """Where the competition file is read from: ``given``, ``$SARBENCH_COMPETITION``, or
    ``<home>/competition.toml``."""
    if given is not None:
        return given
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else settings.home / FILE_NAME


def load_competition(settings: Settings, given: Path | None = None) -> Competition:
    """The competition file in force (:func:`config_path`), or :data:`DEFAULTS` when the
    default place holds none (a file named with ``--config`` or the variable must exist)."""
    path = config_path(settings, given)
    if not path.is_file():
        if given is not None or os.environ.get(ENV_VAR):
            raise CompetitionConfigError(path, ["file not found"])
        return DEFAULTS
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CompetitionConfigError(path, [f"cannot read: {exc}"]) from None
    problems: list[str] = []
    competition = parse_competition(raw, problems, path)
    if problems:
        raise CompetitionConfigError(path, problems)
    return competition


def parse_competition(raw: Mapping[str, Any], problems: list[str], path: Path) -> Competition:
    """The competition of a parsed file; every problem is appended to ``problems``."""
    for key in sorted(set(raw) - _TOP):
        problems.append(f"unknown key `{key}` (known: {', '.join(sorted(_TOP))})")
    teams = raw.get("teams")
    if teams is not None and (
        not isinstance(teams, list) or not all(isinstance(t, str) and t for t in teams)
    ):
        problems.append(f"`teams` must be a list of team names, got {teams!r}")
        teams = None
    attempts = raw.get("max_attempts", 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        problems.append(f"`max_attempts` must be a whole number >= 1, got {attempts!r}")
        attempts = 3
    defaults = _limits("[defaults]", raw.get("defaults", {}), Limits(), _LIMIT_KEYS, problems)
    benches = raw.get("benchmarks")
    if not isinstance(benches, dict) or not benches:
        problems.append("`[benchmarks.<name>]`: at least one benchmark is needed")
        benches = {}
    benchmarks = {}
    for name, table in benches.items():
        where = f"[benchmarks.{name}]"
        limits = _limits(where, table, defaults, _BENCH_KEYS, problems)
        dataset = table.get("dataset", name) if isinstance(table, dict) else name
        if not isinstance(dataset, str) or not dataset:
            problems.append(f"{where}: `dataset` must be a dataset name, got {dataset!r}")
            dataset = name
        benchmarks[name] = Benchmark(name, dataset, limits)
    return Competition(
        benchmarks=benchmarks,
        teams=tuple(teams) if teams is not None else None,
        max_attempts=attempts,
        path=path,
        default_limits=defaults,
    )


def _limits(where: str, table: Any, base: Limits, known: set[str], problems: list[str]) -> Limits:
    """``base`` with the limits ``table`` sets; its problems appended to ``problems``."""
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table, got {table!r}")
        return base
    for key in sorted(set(table) - known):
        problems.append(f"{where}: unknown key `{key}` (known: {', '.join(sorted(known))})")
    changes: dict[str, Any] = {}
    for key in ("runs_per_day", "runs_total"):
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"{where}: `{key}` must be a whole number >= 0, got {value!r}")
            else:
                changes[key] = value
    for key in ("image_cap", "predict_log_cap"):
        if key in table:
            try:
                changes[key] = parse_size(table[key])
            except ValueError as exc:
                problems.append(f"{where}: `{key}`: {exc}")
    if "profile" in table:
        if isinstance(table["profile"], str) and table["profile"]:
            changes["profile"] = table["profile"]
        else:
            problems.append(f"{where}: `profile` must be a profile name, got {table['profile']!r}")
    if "allow_public_test" in table:
        if isinstance(table["allow_public_test"], bool):
            changes["allow_public_test"] = table["allow_public_test"]
        else:
            problems.append(f"{where}: `allow_public_test` must be true or false")
    return replace(base, **changes)
