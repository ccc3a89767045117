"""The container contract, as a baseline sees it (docs/contract.md).

Paths come from the ``SARBENCH_*`` variables with the fixed container paths as fallbacks
(:class:`sarbench_io.contract.Mounts`), so the same code runs in a container and under the
local backend. ``/config/run.json`` (read by :func:`sarbench_io.read_run_config`) carries
the task, dataset (with its band roles), variant options, seed and time budget of the phase.

Band roles: the harness runs a variant only on datasets whose band roles fit what its
entry file says it needs (``requires_roles``); each model checks again with
:func:`require_roles` and refuses a run on bands it cannot use (a second line of defence,
for a configuration written by hand or by another harness).

Options: each model declares a frozen dataclass of its options with defaults
(:func:`resolve_options` builds it from the run's options and refuses unknown keys);
:func:`write_options` writes the resolved options, non-defaults marked, as an artifact.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sarbench_io.bands import layout_text, run_band_roles
from sarbench_io.contract import Mounts, read_run_config
from sarbench_io.errors import ContractError

T = TypeVar("T")


@dataclass(frozen=True)
class Paths(Mounts):
    """Where the phase's mounts are (container paths, or host paths under ``local``):
    ``Paths.from_env()``, ``paths.split("train")``, ``paths.model``..."""

    def has_split(self, name: str) -> bool:
        return (self.split(name) / "inputs").is_dir()

    @property
    def artifacts(self) -> Path:
        """``/model/artifacts``: loss curves and the resolved options; the harness keeps them."""
        folder = self.model / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


@dataclass(frozen=True)
class RunConfig:
    """``/config/run.json``."""

    phase: str
    task: str
    dataset: str
    dataset_digest: str
    entry: str
    variant: str
    options: dict[str, Any]
    seed: int
    profile: str
    time_budget_s: float
    bands: tuple[str, ...]
    cpus: float = 0.0
    """``resources.cpus`` of the run (0: not given)."""
    gpu: bool = False
    """``resources.gpu``: whether the phase was given a GPU."""
    band_roles: tuple[str, ...] | None = None
    """``dataset.band_roles``: what each band is (``("pre", "post")``, ``("VV", "VH")``);
    None: not known. A configuration without the key: what the band names state."""

    @property
    def threads(self) -> int:
        """How many compute threads to use: the run's CPU quota, else every visible core."""
        if self.cpus >= 1:
            return int(self.cpus)
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        raw = read_run_config(path)
        try:
            return cls(
                phase=raw["phase"],
                task=raw["task"]["name"],
                dataset=raw["dataset"]["name"],
                dataset_digest=raw["dataset"]["digest"],
                entry=raw["entry"],
                variant=raw["variant"],
                options=dict(raw["options"]),
                seed=int(raw["seed"]),
                profile=raw["profile"],
                time_budget_s=float(raw["time_budget_s"]),
                bands=tuple(raw["dataset"]["bands"]),
                cpus=float(raw.get("resources", {}).get("cpus", 0.0)),
                gpu=bool(raw.get("resources", {}).get("gpu", False)),
                band_roles=run_band_roles(raw),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"{path}: missing or malformed key: {exc}") from exc


def require_task(config: RunConfig, *tasks: str) -> None:
    """Refuse a run of a task the model does not do (a :class:`ContractError`)."""
    if config.task not in tasks:
        raise ContractError(
            f"entry {config.entry!r} (model {config.options.get('model')!r}) does the "
            f"{', '.join(tasks)} task, not {config.task!r}"
        )


def require_roles(config: RunConfig, *layouts: tuple[str, ...], what: str = "") -> None:
    """Refuse (a :class:`ContractError`) a run whose dataset's band roles are none of
    ``layouts`` (each a tuple of roles in band order), or are not known."""
    if config.band_roles is not None and tuple(config.band_roles) in layouts:
        return
    need = " or ".join(layout_text(layout) for layout in layouts)
    have = (
        f"are {layout_text(config.band_roles)}"
        if config.band_roles is not None
        else "have no known roles"
    )
    raise ContractError(
        f"{config.entry}/{config.variant}{f' ({what})' if what else ''} needs bands {need}; "
        f"the bands of {config.dataset} ({', '.join(config.bands)}) {have}"
    )


def resolve_options(cls: type[T], options: dict[str, Any], *, ignore: Iterable[str] = ()) -> T:
    """The options dataclass ``cls`` from a run's options; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - names - set(ignore))
    if unknown:
        raise ContractError(
            f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(names))}"
        )
    try:
        return cls(**{k: v for k, v in options.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise ContractError(f"bad options for {cls.__name__}: {exc}") from exc


def write_options(paths: Paths, options: Any) -> dict[str, Any]:
    """Write the resolved options to ``artifacts/options.json``, non-defaults marked."""
    resolved = dataclasses.asdict(options)
    defaults = dataclasses.asdict(type(options)())
    doc = {
        "model": type(options).__name__,
        "options": resolved,
        "non_default": sorted(k for k, v in resolved.items() if defaults.get(k) != v),
    }
    (paths.artifacts / "options.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    for key in doc["non_default"]:
        log(f"option {key} = {resolved[key]!r} (default {defaults[key]!r})")
    return doc


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when imported) torch, with deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False


def log(message: str) -> None:
    """One line on stdout, flushed (the harness keeps the log)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def progress(items: Iterable[T], total: int, what: str, every: float = 0.1) -> Iterator[T]:
    """Yield ``items`` and log a progress line at every ``every`` fraction of ``total``."""
    step = max(1, int(total * every))
    start = time.monotonic()
    for i, item in enumerate(items, 1):
        yield item
        if i % step == 0 or i == total:
            log(f"{what}: {i}/{total} ({time.monotonic() - start:.1f} s)")


def write_loss_curve(paths: Paths, rows: list[dict[str, float]], name: str = "loss.csv") -> None:
    """Write a loss curve (one dict per epoch or step) as CSV into the artifacts."""
    if not rows:
        return
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(f"{row.get(k, '')}" for k in keys) for row in rows]
    (paths.artifacts / name).write_text("\n".join(lines) + "\n")
